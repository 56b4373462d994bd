{{ config(
    severity='warn',
    store_failures=(target.type == 'postgres'),
    schema='audit',
) }}

-- A transaction whose resident lives in a different condominium than the property.
-- Legitimate (people buy and rent elsewhere) but worth seeing: it is why
-- transacoes_por_condominio and transacoes_por_morador can attribute the same transaction
-- to different condominiums.
select
    transacoes.transacao_id,
    transacoes.imovel_id,
    imoveis.condominio_id as condominio_do_imovel,
    transacoes.morador_id,
    moradores.condominio_id as condominio_do_morador
from {{ ref('stg_transacoes') }} as transacoes
inner join {{ ref('stg_imoveis') }} as imoveis
    on transacoes.imovel_id = imoveis.imovel_id
inner join {{ ref('stg_moradores') }} as moradores
    on transacoes.morador_id = moradores.morador_id
where imoveis.condominio_id != moradores.condominio_id
